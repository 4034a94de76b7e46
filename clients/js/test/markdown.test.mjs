// The safe Markdown renderer: what it parses, and that no input produces markup of its own.
import { test } from "node:test";
import assert from "node:assert/strict";
import { isSafeHref, parseMarkdown, parseInline, renderMarkdown } from "../dist/markdown.js";

// A minimal DOM: records exactly which elements, attributes and text nodes the renderer creates.
// Serializing escapes text, so any "<tag>" in the output is an element the renderer made.
class Node_ {
  constructor(tag) {
    this.tag = tag;
    this.children = [];
    this.attributes = {};
    this.dataset = {};
  }
  append(...nodes) {
    this.children.push(...nodes);
  }
  setAttribute(name, value) {
    this.attributes[name] = String(value);
  }
  set textContent(text) {
    this.children = [{ text: String(text) }];
  }
  get innerHTML() {
    throw new Error("the renderer must never read or write HTML");
  }
  set innerHTML(_value) {
    throw new Error("the renderer must never read or write HTML");
  }
}
const fakeDocument = {
  created: [],
  createDocumentFragment() {
    return new Node_(null);
  },
  createElement(tag) {
    this.created.push(tag);
    return new Node_(tag);
  },
  createTextNode(text) {
    return { text: String(text) };
  },
};
const escape = (text) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
function html(node) {
  if ("text" in node) return escape(node.text);
  const inner = node.children.map(html).join("");
  if (node.tag === null) return inner;
  const attrs = Object.entries(node.attributes).map(([k, v]) => ` ${k}="${escape(v)}"`).join("");
  return node.tag === "br" || node.tag === "hr" ? `<${node.tag}${attrs}>` : `<${node.tag}${attrs}>${inner}</${node.tag}>`;
}
const render = (text) => html(renderMarkdown(text, fakeDocument));
const ALLOWED = new Set(["p", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "code", "blockquote", "ul", "ol", "li", "hr", "strong", "em", "del", "a", "br"]);

test("paragraphs, line breaks, emphasis, strong, strikethrough, code", () => {
  assert.equal(render("Hello *world*, **bold** and ~~gone~~ `x<y`\nnext line"),
    "<p>Hello <em>world</em>, <strong>bold</strong> and <del>gone</del> <code>x&lt;y</code><br>next line</p>");
  assert.equal(render("a\n\nb"), "<p>a</p><p>b</p>");
  assert.equal(render("snake_case_name and 2 * 3 * 4"), "<p>snake_case_name and 2 * 3 * 4</p>");
  assert.equal(render("__strong__ _em_ \\*not em\\*"), "<p><strong>strong</strong> <em>em</em> *not em*</p>");
});

test("headings, rules, quotes and lists", () => {
  assert.equal(render("# Title\n## Sub ##"), "<h1>Title</h1><h2>Sub</h2>");
  assert.equal(render("---"), "<hr>");
  assert.equal(render("> quoted **text**\n> more"), "<blockquote><p>quoted <strong>text</strong><br>more</p></blockquote>");
  assert.equal(render("- one\n- two\n  continued\n\n3. three\n4. four"),
    "<ul><li>one</li><li>two<br>continued</li></ul><ol start=\"3\"><li>three</li><li>four</li></ol>");
  assert.equal(render("Intro:\n- a\n- b"), "<p>Intro:</p><ul><li>a</li><li>b</li></ul>");
});

test("fenced code keeps its text verbatim, even unterminated while streaming", () => {
  assert.equal(render("```python\nprint('<b>')\n# not a heading\n```\nafter"),
    "<pre><code>print('&lt;b&gt;')\n# not a heading</code></pre><p>after</p>");
  const blocks = parseMarkdown("```js\nlet a = 1;\nstill streaming");
  assert.deepEqual(blocks, [{ type: "code", language: "js", text: "let a = 1;\nstill streaming" }]);
});

test("links keep only http(s) and mailto targets", () => {
  assert.equal(render("[docs](https://example.com/a?b=1)"),
    '<p><a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow" target="_blank">docs</a></p>');
  assert.equal(render("[click](javascript:alert(1))"), "<p>click</p>");
  assert.equal(render("[x](data:text/html,<script>alert(1)</script>)"), "<p>x</p>");
  assert.equal(render("[x](JaVaScRiPt:alert(1))"), "<p>x</p>");
  assert.ok(isSafeHref("mailto:a@b.c"));
  assert.ok(!isSafeHref("//evil.example"));
  assert.ok(!isSafeHref("/relative"));
  assert.ok(!isSafeHref("vbscript:msgbox"));
});

test("HTML in a reply is text, never markup", () => {
  const hostile = [
    '<img src=x onerror="alert(1)">',
    "<script>alert(1)</script>",
    '**<a href="javascript:alert(1)">bold</a>**',
    '<div style="position:fixed">x</div>\n\n- <iframe src="https://evil">',
    '`<svg onload=alert(1)>`',
    "[<img src=x onerror=alert(1)>](https://ok.example)",
  ];
  fakeDocument.created = [];
  for (const text of hostile) {
    const out = render(text);
    for (const tag of out.matchAll(/<([a-z0-9]+)/g)) assert.ok(ALLOWED.has(tag[1]), `${tag[1]} in ${out}`);
    assert.ok(!/<(img|script|iframe|svg|div)/.test(out), out);
    assert.ok(!/ on[a-z]+=/.test(out.replace(/&lt;[^&]*&gt;/g, "")), out);
  }
  for (const tag of fakeDocument.created) assert.ok(ALLOWED.has(tag), tag);
  assert.ok(render(hostile[0]).includes("&lt;img src=x onerror=\"alert(1)\"&gt;"));
});

test("inline parsing is total: unbalanced markers stay text", () => {
  assert.deepEqual(parseInline("**open"), [{ type: "text", text: "**open" }]);
  assert.deepEqual(parseInline("`open"), [{ type: "text", text: "`open" }]);
  assert.deepEqual(parseInline("[a](b"), [{ type: "text", text: "[a](b" }]);
  for (const text of ["*", "_", "[", "](", "``", "\\", "***", "[[]]()", "**a*b**c*"]) {
    assert.doesNotThrow(() => render(text), text);
  }
});
