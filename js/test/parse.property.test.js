// Property-based tests (fast-check) of everything the helper parses from outside: the
// X-SPA-Version value (response header, meta tag, drain close reason, another tab's
// message; docs/protocol.md), and the loop guard's log in sessionStorage.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import fc from "fast-check";
import { parseVersion, start } from "../src/index.js";
import { cleanup, page } from "./helpers.js";

afterEach(cleanup);

const runs = { numRuns: 500 };
const EPOCH_MAX = 999_999_999_999_999; // 15 digits

// The pieces of a valid value, as docs/protocol.md defines them.
const epoch = fc.integer({ min: 1, max: EPOCH_MAX });
// Epoch 0: the unreleased value a server stamps before the first release (docs/protocol.md,
// "Before the first release"), a valid element older than every release.
const epochOrUnreleased = fc.oneof(fc.constant(0), epoch);
const label = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/);
const policy = fc.constantFrom("next-navigation", "immediate", "prompt", "silent", "gentle");
const version = fc
  .record({ epoch: epochOrUnreleased, label: fc.option(label), policy, min: fc.option(epoch) })
  .map((v) => ({ ...v })); // a plain object, as parseVersion returns

const ws = fc.stringMatching(/^[ \t]{0,3}$/);

/** A header value for `v`, its parameters in any order, with optional whitespace. */
const formatted = (v) =>
  fc
    .tuple(fc.shuffledSubarray(["label", "policy", "min"], { minLength: 3, maxLength: 3 }), ws, ws)
    .map(([order, a, b]) => {
      const params = { label: v.label, policy: v.policy, min: v.min };
      return (
        a +
        v.epoch +
        order
          .filter((key) => params[key] != null)
          .map((key) => `${a};${b}${key}${a}=${b}${params[key]}`)
          .join("") +
        b
      );
    });

/** An element no parser may take for a value: no epoch of 1-15 digits at its start. */
const invalid = fc.oneof(
  fc.constantFrom("", "-1", "1.5", "42abc", "0x10", "label=x; 5", "1234567890123456"),
  fc.string().filter((s) => !/^\s*\d/.test(s)).map((s) => s.replaceAll(",", "")),
);

test("parseVersion never throws, and returns null or a well-formed version, on any string", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.string({ unit: "grapheme" })), (value) => {
      const v = parseVersion(value);
      if (v === null) return;
      assert.ok(Number.isSafeInteger(v.epoch) && v.epoch >= 0 && v.epoch <= EPOCH_MAX);
      assert.ok(v.min === null || (Number.isSafeInteger(v.min) && v.min >= 1));
      assert.equal(typeof v.policy, "string");
      assert.ok(v.label === null || typeof v.label === "string");
    }),
    runs,
  );
});

test("a formatted version parses back to itself", () => {
  fc.assert(
    fc.property(version.chain((v) => fc.tuple(fc.constant(v), formatted(v))), ([v, value]) => {
      assert.deepEqual(parseVersion(value), v);
    }),
    runs,
  );
});

test("comma-joined values: the valid element with the highest epoch wins, the first of equal ones", () => {
  const element = fc.oneof(
    version.chain((v) => fc.tuple(fc.constant(v), formatted(v))),
    invalid.map((value) => [null, value]),
  );
  fc.assert(
    fc.property(fc.array(element, { minLength: 1, maxLength: 6 }), ws, (elements, space) => {
      let expected = null;
      for (const [v] of elements) if (v && (!expected || v.epoch > expected.epoch)) expected = v;
      assert.deepEqual(parseVersion(elements.map(([, value]) => value).join(space + "," + space)), expected);
    }),
    runs,
  );
});

test("a value repeated by a proxy parses like the value once", () => {
  fc.assert(
    fc.property(fc.string(), fc.integer({ min: 2, max: 4 }), (value, times) => {
      const once = parseVersion(value);
      // A value that holds a comma is several elements already; repeating it keeps the
      // same highest one.
      assert.deepEqual(parseVersion(Array(times).fill(value).join(", ")), once);
    }),
    runs,
  );
});

test("whatever the loop guard's log holds, reload() never throws and answers a boolean", () => {
  fc.assert(
    fc.property(fc.oneof(fc.json(), fc.string()), fc.integer({ min: 1, max: 5 }), (stored, maxReloads) => {
      const { w, loads } = page("http://127.0.0.1:9", "");
      w.sessionStorage.setItem("spa-version:reloads", stored);
      const sv = start({ window: w, baseline: 1, maxReloads });
      const answer = sv.reload();
      assert.equal(typeof answer, "boolean");
      assert.equal(loads.length, answer ? 1 : 0);
    }),
    { numRuns: 100 },
  );
});
