// A page that loads its data through the app's axios.create() client.
export function render(root, { api }) {
  root.innerHTML = `<h1 data-release="${RELEASE}">Items</h1><ul id="items"></ul>`;
  api.get("/items").then((res) => {
    document.getElementById("items").innerHTML = res.data.map((item) => `<li>${item}</li>`).join("");
  });
}
