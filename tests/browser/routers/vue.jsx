// Vue Router: a global guard asks first (docs/js.md, "Vue Router"), so the target route's
// component never loads its data with the old code.
import { createApp, h, ref } from "vue";
import { createRouter, createWebHistory, RouterLink, RouterView } from "vue-router";
import { start } from "spa-version";

const sv = start();
window.sv = sv;

const A = { setup: () => () => [h("h1", "A"), h(RouterLink, { to: "/b" }, () => "to b")] };
const B = {
  setup() {
    const data = ref("");
    fetch("/api/b").then((res) => res.text()).then((text) => (data.value = text));
    return () => h("h1", `B: ${data.value}`);
  },
};
const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: A },
    { path: "/b", component: B },
  ],
});
router.beforeEach((to) => !sv.navigate(router.resolve(to).href));
createApp({ render: () => h(RouterView) }).use(router).mount("#root");
