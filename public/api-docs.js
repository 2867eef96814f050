// Swagger UI for /api/docs, reading /api/openapi.json (a file, not an inline script: the CSP forbids those).

/**
 * Landmarks and headings around Swagger UI's own markup: the document's title block becomes the
 * page's banner and the Authorize button a labelled region (everything sits in a landmark), with a hidden level-2 heading after the title so
 * the operation groups (h3) follow the h1 in order.
 */
function TallyLandmarks(system) {
  var h = system.React.createElement;
  return {
    wrapComponents: {
      InfoContainer: function (Original) {
        return function (props) {
          return h('header', { role: 'banner' }, h(Original, props), h('h2', { className: 'tally-visually-hidden' }, 'Operations by group'));
        };
      },
      SchemesContainer: function (Original) {
        return function (props) {
          return h('section', { 'aria-label': 'Authorization' }, h(Original, props));
        };
      },
    },
  };
}

window.addEventListener('DOMContentLoaded', function () {
  window.ui = window.SwaggerUIBundle({
    url: '/api/openapi.json',
    dom_id: '#swagger-ui',
    // No deep links: Swagger UI puts them inside each operation's toggle button (axe nested-interactive).
    deepLinking: false,
    layout: 'BaseLayout',
    presets: [window.SwaggerUIBundle.presets.apis],
    plugins: [TallyLandmarks],
    // Same-origin cookie session: "Try it out" works when signed in to Tally in this browser.
    withCredentials: true,
    // No validator badge: it would call validator.swagger.io (offline, and the CSP blocks it).
    validatorUrl: null,
  });
});
