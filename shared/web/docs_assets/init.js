// Starts Fedelta's API docs page (shared/web/docs.py). A file of its own: the page's
// Content-Security-Policy runs no inline script. No validator badge: it would call a
// server elsewhere (the policy would refuse it anyway).
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    validatorUrl: null,
  });
});
