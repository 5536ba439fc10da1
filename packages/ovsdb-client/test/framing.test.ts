import t from "tap";
import { JsonStreamDecoder, FramingError } from "../src/index.js";

const messages = [
  { method: "echo", params: [], id: "echo" },
  {
    id: 1,
    result: [{ rows: [{ name: 'brace } and [ bracket ] in "quotes"', note: 'back\\slash \\" quote' }] }],
    error: null,
  },
  { id: 2, result: { ключ: "значение — 日本語 🚀", nested: [[[{}]], []] }, error: null },
  [1, 2, { a: "}" }],
];
const wire = Buffer.from(messages.map((m) => JSON.stringify(m)).join(" \n\t"));

t.test("a stream split at every byte yields every message once, in order", async (t) => {
  for (let cut = 1; cut < wire.length; cut++) {
    const d = new JsonStreamDecoder();
    const out = [...d.push(wire.subarray(0, cut)), ...d.push(wire.subarray(cut))];
    t.same(out, messages, `cut at byte ${cut}`);
    t.equal(d.pending, false);
  }
});

t.test("one byte at a time, including multi-byte UTF-8 split across chunks", async (t) => {
  const d = new JsonStreamDecoder();
  const out: unknown[] = [];
  for (let i = 0; i < wire.length; i++) out.push(...d.push(wire.subarray(i, i + 1)));
  t.same(out, messages);
});

t.test("many messages in one chunk", async (t) => {
  const d = new JsonStreamDecoder();
  const many = Array.from({ length: 1000 }, (_, i) => ({ id: i, result: [`é${i}`], error: null }));
  t.same(d.push(Buffer.from(many.map((m) => JSON.stringify(m)).join(""))), many);
});

t.test("a message that ends a chunk and one that starts the next are both kept", async (t) => {
  const d = new JsonStreamDecoder();
  const a = Buffer.from('{"id":1}{"id":');
  const b = Buffer.from("2}");
  t.same(d.push(a), [{ id: 1 }]);
  t.equal(d.pending, true);
  t.same(d.push(b), [{ id: 2 }]);
});

t.test("garbage between messages is a FramingError naming what was found", async (t) => {
  const d = new JsonStreamDecoder();
  t.throws(() => d.push(Buffer.from('{"id":1} x')), { name: "FramingError", message: /found "x"/ });
  const e = new JsonStreamDecoder();
  t.throws(() => e.push(Buffer.from('{"id":1,}')), FramingError);
});

t.test("a message over the size limit is refused instead of buffered forever", async (t) => {
  const d = new JsonStreamDecoder(100);
  t.throws(() => d.push(Buffer.from(`{"big":"${"x".repeat(200)}`)), { message: /exceeds 100 bytes/ });
});
