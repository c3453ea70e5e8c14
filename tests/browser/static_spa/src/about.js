export function render(root) {
  root.innerHTML = `<h1 data-release="${RELEASE}">About</h1>`;
}
