// A form whose draft survives a forced reload (docs/js.md, "Keeping the user's work"):
// main.js stashes it at the reload event, this page restores it once.
export function render(root, { api }) {
  root.innerHTML = `<h1 data-release="${RELEASE}">Edit</h1>
<form data-draft="note"><textarea name="text"></textarea><button type="submit">Save</button></form>
<p id="notice"></p>`;
  const form = root.querySelector("form");
  const saved = sessionStorage.getItem("draft:note");
  if (saved) {
    sessionStorage.removeItem("draft:note");
    const { fields, refused } = JSON.parse(saved);
    for (const [name, value] of Object.entries(fields)) form.elements[name].value = value;
    if (refused) root.querySelector("#notice").textContent = `Not saved (${refused}): a new version loaded. Your text is kept; save again.`;
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    api.post("/save", { text: form.elements.text.value }).then(
      () => (root.querySelector("#notice").textContent = "saved"),
      () => {},
    );
  });
}
