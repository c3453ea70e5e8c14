// TanStack Router: a history blocker asks first (docs/js.md, "TanStack Router"), so the
// target route's loader never runs with the old code.
import { createRoot } from "react-dom/client";
import {
  createBrowserHistory,
  createRootRoute,
  createRoute,
  createRouter,
  Link,
  Outlet,
  RouterProvider,
} from "@tanstack/react-router";
import { start } from "spa-version";

const sv = start();
window.sv = sv;

const rootRoute = createRootRoute({ component: Outlet });
const a = createRoute({
  getParentRoute: () => rootRoute,
  path: "/",
  component: () => (
    <>
      <h1>A</h1>
      <Link to="/b">to b</Link>
    </>
  ),
});
const b = createRoute({
  getParentRoute: () => rootRoute,
  path: "/b",
  loader: () => fetch("/api/b").then((res) => res.text()),
  component: function B() {
    return <h1>B: {b.useLoaderData()}</h1>;
  },
});
const history = createBrowserHistory();
// Push and replace only: at Back and Forward the helper reloads on its own (popstate).
history.block({
  blockerFn: ({ nextLocation, action }) => (action === "PUSH" || action === "REPLACE") && sv.navigate(nextLocation.href),
  enableBeforeUnload: false,
});
const router = createRouter({ routeTree: rootRoute.addChildren([a, b]), history });
createRoot(document.getElementById("root")).render(<RouterProvider router={router} />);
