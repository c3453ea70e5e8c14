// Defaults that the script-tag build (iife.js) adjusts before anything starts; not part of
// the package's public entry.
export const defaults = {
  // The version endpoint check() fetches when `options.endpoint` is not set.
  endpoint: "/__spa-version",
};
