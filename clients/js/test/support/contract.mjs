// The contract's JSON Schema, compiled with ajv: tests validate what the real stack sends.
import { readFileSync } from "node:fs";
import Ajv2020Module from "ajv/dist/2020.js";

const Ajv2020 = Ajv2020Module.default ?? Ajv2020Module;

export const schema = JSON.parse(
  readFileSync(new URL("../../../../contract/schema.json", import.meta.url), "utf8"),
);

const ajv = new Ajv2020({
  strict: true,
  allErrors: true,
  keywords: ["x-reply", "x-errorHttpStatus", "x-limits", "x-routes"],
});
ajv.addSchema(schema, "contract");

const cache = new Map();

/** A validator function for one $defs entry. */
export function validator(name) {
  if (!(name in schema.$defs)) throw new Error(`no definition ${name}`);
  let validate = cache.get(name);
  if (!validate) {
    validate = ajv.getSchema(`contract#/$defs/${name}`);
    cache.set(name, validate);
  }
  return validate;
}

/** Throws with ajv's errors unless `value` is a valid `name`. */
export function assertContract(name, value) {
  const validate = validator(name);
  if (!validate(value)) {
    throw new Error(`not a valid ${name}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 600)}`);
  }
}
