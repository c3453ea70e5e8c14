// A login page: it sends no request until submit.
export function render(root) {
  root.innerHTML = `<h1 data-release="${RELEASE}">Log in</h1><form><input name="user"></form>`;
}
