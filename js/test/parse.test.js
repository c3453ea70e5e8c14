// parseVersion against docs/protocol.md, "Response header": the table is the spec's rules.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseVersion } from "../src/index.js";

const v = (epoch, label = null, policy = "next-navigation", min = null) => ({ epoch, label, policy, min });

const cases = [
  // The spec's own examples.
  ["1; label=demo-1; policy=next-navigation", v(1, "demo-1")],
  ["42; label=a1b2c3d4e5-20261126034512; policy=immediate; min=40", v(42, "a1b2c3d4e5-20261126034512", "immediate", 40)],
  // A bare epoch (the short close reason) and the defaults it implies.
  ["43", v(43)],
  // Whitespace around ";" and "=" is ignored.
  ["  7 ;label = x ;  policy= prompt ;min =3 ", v(7, "x", "prompt", 3)],
  // Unknown parameters, and pieces without "=", are ignored: the format can grow.
  ["5; flavour=mint; label=b; future; policy=silent", v(5, "b", "silent")],
  ["5; labels=no; xpolicy=no", v(5)],
  // A malformed min is dropped, the rest kept.
  ["5; min=soon", v(5)],
  ["5; min=0", v(5)],
  // 15 digits is the most an epoch may have.
  ["999999999999999", v(999999999999999)],
  // Epoch 0: the unreleased value stamped before the first release (docs/protocol.md,
  // "Before the first release"): a version, older than every release.
  ["0; label=unreleased; policy=next-navigation", v(0, "unreleased")],
  ["0; label=x, 3; label=y", v(3, "y")],
  ["3; label=y, 0; label=x", v(3, "y")],
  // Invalid: not starting with digits, too long, not a bare integer.
  ["", null],
  ["label=x; 5", null],
  ["1234567890123456", null],
  ["-1", null],
  ["1.5", null],
  ["42abc", null],
  ["0x10", null],
  // Comma-joined (a proxy or an XHR joined repeated headers): each element is one value,
  // invalid elements are ignored, the highest epoch wins, the first of equal ones.
  ["7; label=a; policy=prompt, 7; label=a; policy=prompt", v(7, "a", "prompt")],
  ["7; label=a, 9; label=b; min=8, 8; label=c", v(9, "b", "next-navigation", 8)],
  ["7; label=first, 7; label=second", v(7, "first")],
  ["junk, 0, 5; label=x,", v(5, "x")],
  [" , ,", null],
  ["1234567890123456, 12", v(12)],
]

for (const [value, expected] of cases) {
  test(`parseVersion(${JSON.stringify(value)})`, () => {
    assert.deepEqual(parseVersion(value), expected);
  });
}

test("non-strings: null and undefined are invalid, a number is an epoch", () => {
  assert.equal(parseVersion(null), null);
  assert.equal(parseVersion(undefined), null);
  assert.deepEqual(parseVersion(12), v(12));
});
