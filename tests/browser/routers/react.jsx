// React Router (a data router): links are asked first (docs/js.md, "React Router"), so
// the target route's loader never runs with the old code.
import { createRoot } from "react-dom/client";
import { createBrowserRouter, Link, RouterProvider, useLoaderData } from "react-router";
import { start } from "spa-version";

const sv = start();
window.sv = sv;
// Ask before the router sees a link's click (capture phase): if a new version is
// pending, navigate() loads the link's URL in full and the router does nothing.
document.addEventListener(
  "click",
  (event) => {
    const link = event.target.closest?.("a[href]");
    const plain = event.button === 0 && !(event.metaKey || event.ctrlKey || event.shiftKey || event.altKey);
    if (link && plain && !link.target && link.origin === location.origin && sv.navigate(link.href)) event.preventDefault();
  },
  true,
);

function A() {
  return (
    <>
      <h1>A</h1>
      <Link to="/b">to b</Link>
    </>
  );
}
function B() {
  return <h1>B: {useLoaderData()}</h1>;
}
const router = createBrowserRouter([
  { path: "/", element: <A /> },
  { path: "/b", element: <B />, loader: () => fetch("/api/b").then((res) => res.text()) },
]);
createRoot(document.getElementById("root")).render(<RouterProvider router={router} />);
