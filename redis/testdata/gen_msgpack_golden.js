// gen_msgpack_golden.js writes msgpack_golden.json: values in JSON form
// ({"$bin": base64} for binary) with their @msgpack/msgpack 2.8 encoding in
// hex, the codec of @socket.io/redis-streams-adapter. Run from the
// repository root after npm install: node redis/testdata/gen_msgpack_golden.js
"use strict";
const path = require("path");
const fs = require("fs");
const { encode } = require(require.resolve("@msgpack/msgpack", { paths: [path.join(__dirname, "..", "..")] }));

// Large values are written as specs: {"$str": s, "n"}: s repeated n times;
// {"$arr": v, "n"}: an array of n copies of v; {"$fill": byte, "n"}: n bytes.
function fromJSON(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJSON);
  if (typeof v.$bin === "string") return Buffer.from(v.$bin, "base64");
  if (typeof v.$str === "string") return v.$str.repeat(v.n);
  if ("$arr" in v) return new Array(v.n).fill(fromJSON(v.$arr));
  if (typeof v.$fill === "number") return Buffer.alloc(v.n, v.$fill);
  const o = {};
  for (const k of Object.keys(v)) o[k] = fromJSON(v[k]);
  return o;
}

const values = [
  null, true, false, 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 9007199254740991,
  -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -9007199254740991,
  1.5, -0.25, 1e300, 9007199254740992, "", "a", { $str: "x", n: 31 }, { $str: "x", n: 32 }, { $str: "x", n: 255 }, { $str: "x", n: 256 },
  { $str: "x", n: 65535 }, { $str: "x", n: 65536 }, "héllo ✓ 😀", [], [1, [2, [3]]], { $arr: 0, n: 15 }, { $arr: 0, n: 16 }, { $arr: 1, n: 65536 }, {},
  { b: 1, a: 2 }, Object.fromEntries(Array.from({ length: 16 }, (_, i) => ["k" + i, i])),
  { $bin: "" }, { $bin: Buffer.from([0, 1, 2, 255]).toString("base64") },
  { $fill: 7, n: 255 }, { $fill: 7, n: 256 }, { $fill: 9, n: 65536 },
  {
    type: 3, data: { packet: { type: 2, data: ["ev", { $bin: "AAEC" }, { nested: [1, "two"] }] }, requestId: "0123456789abcdef",
      opts: { rooms: ["r1"], except: [], flags: { timeout: 5000 } } }, uid: "2a0ecab340ec8615", nsp: "/",
  },
];

const crypto = require("crypto");
const out = values.map((v) => {
  const b = Buffer.from(encode(fromJSON(v)));
  if (b.length > 300) return { value: v, len: b.length, sha256: crypto.createHash("sha256").update(b).digest("hex") };
  return { value: v, hex: b.toString("hex") };
});
fs.writeFileSync(path.join(__dirname, "msgpack_golden.json"), JSON.stringify(out).replace(/\},\{"value"/g, '},\n{"value"') + "\n");
