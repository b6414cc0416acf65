// Starts Swagger UI on the service's own OpenAPI document (kept out of docs.html so the
// page's Content-Security-Policy needs no inline script).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
