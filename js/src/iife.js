// The script-tag build: `<script src="/__spa-version.js">` and nothing else.
import * as SpaVersion from "./index.js";

const script = document.currentScript;
globalThis.SpaVersion = SpaVersion;
// Start at once with everything on (the baseline comes from <meta name="spa-version">);
// `SpaVersion.start({...})` later merges options into this instance. `data-manual` on the
// tag leaves starting to the page, e.g. to pass a baseline or pick helpers.
if (!(script && script.hasAttribute("data-manual"))) SpaVersion.startAll();
