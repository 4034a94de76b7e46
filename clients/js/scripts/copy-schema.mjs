#!/usr/bin/env node
// Ships the contract's schema inside the package (`@cache-warming/client/schema.json`).
import { copyFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
copyFileSync(resolve(here, "../../../contract/schema.json"), resolve(here, "../schema.json"));
