/**
 * A small Markdown renderer for model replies that cannot inject HTML.
 *
 * Replies are untrusted text (a model repeats what it is asked to). This renderer never builds
 * HTML strings: it parses into a tiny tree of known node types and creates DOM elements from a
 * fixed list of tags, with every piece of text a text node. Raw HTML in a reply is shown as text;
 * links keep only http(s) and mailto targets. It covers what chat replies use: paragraphs with
 * line breaks, headings, emphasis, strong, strikethrough, inline code, fenced code blocks,
 * block quotes, ordered and unordered lists, rules and links. An unterminated fence (a reply still
 * streaming) renders as code up to the end.
 */

export type Inline =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "code"; readonly text: string }
  | { readonly type: "strong" | "em" | "del"; readonly children: readonly Inline[] }
  | { readonly type: "link"; readonly href: string; readonly children: readonly Inline[] }
  | { readonly type: "br" };

export type Block =
  | { readonly type: "paragraph"; readonly children: readonly Inline[] }
  | { readonly type: "heading"; readonly level: 1 | 2 | 3 | 4 | 5 | 6; readonly children: readonly Inline[] }
  | { readonly type: "code"; readonly language: string; readonly text: string }
  | { readonly type: "quote"; readonly children: readonly Block[] }
  | { readonly type: "list"; readonly ordered: boolean; readonly start: number; readonly items: readonly (readonly Inline[])[] }
  | { readonly type: "rule" };

const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/;
const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
const RULE = /^\s{0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^\s{0,3}>\s?(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;

/** Only these link targets survive (no javascript:, data:, vbscript:, relative tricks). */
export function isSafeHref(href: string): boolean {
  return /^(https?:\/\/|mailto:)[^\s]*$/i.test(href.trim());
}

export function parseMarkdown(text: string): Block[] {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const blocks: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? "";
    if (line.trim() === "") {
      i += 1;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1] ?? "```";
      const body: string[] = [];
      i += 1;
      while (i < lines.length && !(lines[i] ?? "").trim().startsWith(marker)) {
        body.push(lines[i] ?? "");
        i += 1;
      }
      i += 1; // the closing fence (or past the end)
      blocks.push({ type: "code", language: fence[2] ?? "", text: body.join("\n") });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = (heading[1] ?? "#").length as 1 | 2 | 3 | 4 | 5 | 6;
      blocks.push({ type: "heading", level, children: parseInline(heading[2] ?? "") });
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      blocks.push({ type: "rule" });
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const inner: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i] ?? "")) {
        inner.push(QUOTE.exec(lines[i] ?? "")?.[1] ?? "");
        i += 1;
      }
      blocks.push({ type: "quote", children: parseMarkdown(inner.join("\n")) });
      continue;
    }
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    if (bullet || numbered) {
      const ordered = numbered !== null;
      const pattern = ordered ? NUMBERED : BULLET;
      const items: string[][] = [];
      while (i < lines.length) {
        const current = lines[i] ?? "";
        const match = pattern.exec(current);
        if (match) {
          items.push([(ordered ? match[2] : match[1]) ?? ""]);
        } else if (current.trim() !== "" && /^\s{2,}/.test(current) && items.length > 0) {
          items[items.length - 1]?.push(current.trim()); // a continuation line
        } else {
          break;
        }
        i += 1;
      }
      blocks.push({
        type: "list",
        ordered,
        start: ordered ? Number(numbered?.[1] ?? 1) : 1,
        items: items.map((item) => parseInline(item.join("\n"))),
      });
      continue;
    }
    const paragraph: string[] = [];
    while (i < lines.length) {
      const current = lines[i] ?? "";
      if (
        current.trim() === "" ||
        FENCE.test(current) ||
        HEADING.test(current) ||
        RULE.test(current) ||
        QUOTE.test(current) ||
        (paragraph.length > 0 && (BULLET.test(current) || NUMBERED.test(current)))
      ) {
        break;
      }
      paragraph.push(current);
      i += 1;
    }
    blocks.push({ type: "paragraph", children: parseInline(paragraph.join("\n")) });
  }
  return blocks;
}

const PUNCTUATION = /[!-/:-@[-`{-~]/;

export function parseInline(text: string): Inline[] {
  const out: Inline[] = [];
  let buffer = "";
  const flush = (): void => {
    if (buffer) out.push({ type: "text", text: buffer });
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i] ?? "";
    const next = text[i + 1] ?? "";
    if (ch === "\\" && PUNCTUATION.test(next)) {
      buffer += next;
      i += 2;
      continue;
    }
    if (ch === "\n") {
      flush();
      out.push({ type: "br" });
      i += 1;
      continue;
    }
    if (ch === "`") {
      let run = 1;
      while (text[i + run] === "`") run += 1;
      const ticks = "`".repeat(run);
      const close = text.indexOf(ticks, i + run);
      if (close > i) {
        flush();
        out.push({ type: "code", text: text.slice(i + run, close).replace(/^ (.*) $/s, "$1") });
        i = close + run;
        continue;
      }
      buffer += ticks;
      i += run;
      continue;
    }
    if (ch === "[") {
      const link = matchLink(text, i);
      if (link) {
        flush();
        const children = parseInline(link.label);
        // An unsafe target keeps its text and loses the link.
        if (isSafeHref(link.href)) out.push({ type: "link", href: link.href.trim(), children });
        else out.push(...children);
        i = link.end;
        continue;
      }
    }
    const delimited = matchDelimited(text, i);
    if (delimited) {
      flush();
      out.push({ type: delimited.type, children: parseInline(delimited.inner) });
      i = delimited.end;
      continue;
    }
    buffer += ch;
    i += 1;
  }
  flush();
  return out;
}

function matchLink(text: string, start: number): { label: string; href: string; end: number } | null {
  let depth = 0;
  let close = -1;
  for (let j = start; j < text.length; j += 1) {
    const c = text[j];
    if (c === "\\") {
      j += 1;
    } else if (c === "[") {
      depth += 1;
    } else if (c === "]") {
      depth -= 1;
      if (depth === 0) {
        close = j;
        break;
      }
    } else if (c === "\n") {
      return null;
    }
  }
  if (close < 0 || text[close + 1] !== "(") return null;
  // The target may itself contain balanced parentheses (wiki URLs, and `javascript:f(1)`).
  let end = -1;
  let parens = 0;
  for (let j = close + 2; j < text.length; j += 1) {
    const c = text[j];
    if (c === "(") parens += 1;
    else if (c === ")" && parens-- === 0) {
      end = j;
      break;
    } else if (c === "\n") return null;
  }
  if (end < 0) return null;
  const href = text.slice(close + 2, end);
  if (/\s/.test(href.trim())) return null;
  return { label: text.slice(start + 1, close), href, end: end + 1 };
}

const DELIMITERS: ReadonlyArray<{ token: string; type: "strong" | "em" | "del" }> = [
  { token: "**", type: "strong" },
  { token: "__", type: "strong" },
  { token: "~~", type: "del" },
  { token: "*", type: "em" },
  { token: "_", type: "em" },
];

function matchDelimited(
  text: string,
  start: number,
): { type: "strong" | "em" | "del"; inner: string; end: number } | null {
  for (const { token, type } of DELIMITERS) {
    if (!text.startsWith(token, start)) continue;
    const after = text[start + token.length] ?? "";
    if (after === "" || /\s/.test(after)) continue; // "a * b" is not emphasis
    // snake_case_words are not emphasis: "_" opens only at a word's start.
    if (token[0] === "_" && /[\p{L}\p{N}]/u.test(text[start - 1] ?? "")) continue;
    let from = start + token.length;
    while (from < text.length) {
      const close = text.indexOf(token, from);
      if (close < 0) break;
      const before = text[close - 1] ?? "";
      const following = text[close + token.length] ?? "";
      const wordAfter = token[0] === "_" && /[\p{L}\p{N}]/u.test(following);
      // "**" must not close a single "*" run, and a closer is not preceded by a space.
      const partOfLonger = token.length === 1 && following === token;
      if (close > start + token.length && !/\s/.test(before) && !wordAfter && !partOfLonger) {
        return { type, inner: text.slice(start + token.length, close), end: close + token.length };
      }
      from = close + token.length + (partOfLonger ? 1 : 0);
    }
  }
  return null;
}

const BLOCK_TAGS = { paragraph: "p", quote: "blockquote", rule: "hr" } as const;

/**
 * The reply as DOM nodes (pass the page's `document`; tests may pass another). Only these
 * elements are created: p, h1-h6, pre, code, blockquote, ul, ol, li, hr, strong, em, del, a, br.
 */
export function renderMarkdown(text: string, doc: Document = globalThis.document): DocumentFragment {
  const fragment = doc.createDocumentFragment();
  for (const block of parseMarkdown(text)) fragment.append(renderBlock(block, doc));
  return fragment;
}

function renderBlock(block: Block, doc: Document): Node {
  switch (block.type) {
    case "paragraph":
      return withChildren(doc.createElement(BLOCK_TAGS.paragraph), block.children, doc);
    case "heading":
      return withChildren(doc.createElement(`h${block.level}`), block.children, doc);
    case "code": {
      const pre = doc.createElement("pre");
      const code = doc.createElement("code");
      if (/^[\w+#.-]+$/.test(block.language)) code.dataset["language"] = block.language;
      code.textContent = block.text;
      pre.append(code);
      return pre;
    }
    case "quote": {
      const quote = doc.createElement(BLOCK_TAGS.quote);
      for (const child of block.children) quote.append(renderBlock(child, doc));
      return quote;
    }
    case "list": {
      const list = doc.createElement(block.ordered ? "ol" : "ul");
      if (block.ordered && block.start !== 1) list.setAttribute("start", String(block.start));
      for (const item of block.items) list.append(withChildren(doc.createElement("li"), item, doc));
      return list;
    }
    case "rule":
      return doc.createElement(BLOCK_TAGS.rule);
  }
}

function withChildren(element: HTMLElement, children: readonly Inline[], doc: Document): HTMLElement {
  for (const child of children) element.append(renderInline(child, doc));
  return element;
}

function renderInline(node: Inline, doc: Document): Node {
  switch (node.type) {
    case "text":
      return doc.createTextNode(node.text);
    case "br":
      return doc.createElement("br");
    case "code": {
      const code = doc.createElement("code");
      code.textContent = node.text;
      return code;
    }
    case "link": {
      const anchor = doc.createElement("a");
      anchor.setAttribute("href", node.href);
      anchor.setAttribute("rel", "noopener noreferrer nofollow");
      anchor.setAttribute("target", "_blank");
      return withChildren(anchor, node.children, doc);
    }
    case "strong":
    case "em":
    case "del":
      return withChildren(doc.createElement(node.type), node.children, doc);
  }
}
