// Swagger UI for /api/docs, reading /api/openapi.json (a file, not an inline script: the CSP forbids those).
window.addEventListener('DOMContentLoaded', function () {
  window.ui = window.SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    layout: 'BaseLayout',
    presets: [window.SwaggerUIBundle.presets.apis],
    // Same-origin cookie session: "Try it out" works when signed in to Tally in this browser.
    withCredentials: true,
    // No validator badge: it would call validator.swagger.io (offline, and the CSP blocks it).
    validatorUrl: null,
  });
});
