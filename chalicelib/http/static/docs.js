// Swagger UI over the engine's OpenAPI document (no inline script: the page's CSP allows none).
const config = JSON.parse(document.getElementById("config").textContent);
window.ui = SwaggerUIBundle({
  url: new URL(config.openapi, document.baseURI).toString(),
  dom_id: "#swagger-ui",
  deepLinking: true,
});
