// The script-tag build: `<script src="/__spa-version.js">` and nothing else.
import { defaults } from "./defaults.js";
// Named, not `import * as`: a namespace object would cost esbuild's getter helper.
// test/build.test.js checks that every export of index.js is here.
import { check, parseVersion, socketUrl, start, startAll, watchAxios, watchChunks, watchEventSource, watchFocus, watchIdle, watchServiceWorker, watchSocket, watchTabs, watchXHR } from "./index.js";

const script = document.currentScript;
// The version endpoint sits next to this script: served at /shop/__spa-version.js (an app
// under a mount prefix), it is /shop/__spa-version. Only a script of that name says where
// the endpoint is (bundled into an app's own script it says nothing); `data-endpoint` on
// the tag names any other.
defaults.endpoint =
  script?.dataset.endpoint || /^[^?#]*\/__spa-version(?=\.js([?#]|$))/.exec(script?.src)?.[0] || defaults.endpoint;
globalThis.SpaVersion = { check, parseVersion, socketUrl, start, startAll, watchAxios, watchChunks, watchEventSource, watchFocus, watchIdle, watchServiceWorker, watchSocket, watchTabs, watchXHR };
// Start at once with everything on (the baseline comes from <meta name="spa-version">);
// `SpaVersion.start({...})` later merges options into this instance. `data-manual` on the
// tag leaves starting to the page, e.g. to pass a baseline or pick helpers.
if (!script?.hasAttribute("data-manual")) startAll();
