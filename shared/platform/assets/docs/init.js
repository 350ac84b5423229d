// GuestHub's API reference: Swagger UI on the hub's own OpenAPI document.
// "Authorize" takes a partner key (bearer); "Try it out" calls this hub.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  persistAuthorization: false,
  tryItOutEnabled: false,
  validatorUrl: null,
  displayRequestDuration: true
});
