// The team page's usage chart (issue 16): credits spent from the pool per day, one stacked bar
// series per member, drawn with Chart.js (/static/chart). The figures come from the canvas's
// data-usage attribute; the table under the chart holds the same figures for screen readers
// and for browsers without script.
(function () {
  'use strict';
  var canvas = document.getElementById('usage-chart');
  if (!canvas || typeof window.Chart === 'undefined') return;
  var data;
  try {
    data = JSON.parse(canvas.getAttribute('data-usage') || '');
  } catch (e) {
    return;
  }
  // Colours that keep 3:1 against both the light and the dark page background.
  var palette = ['#1e88e5', '#e65100', '#2e7d32', '#8e24aa', '#c62828', '#00838f', '#6d4c41', '#5e35b1'];
  var style = getComputedStyle(document.body);
  var text = style.color || '#444';
  window.Chart.defaults.color = text;
  window.Chart.defaults.font.family = style.fontFamily;
  new window.Chart(canvas, {
    type: 'bar',
    data: {
      labels: data.labels,
      datasets: data.series.map(function (s, i) {
        return { label: s.name, data: s.credits, backgroundColor: palette[i % palette.length], borderWidth: 0 };
      }),
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      plugins: { legend: { position: 'bottom' }, tooltip: { callbacks: { label: function (c) { return c.dataset.label + ': ' + c.parsed.y + ' credits'; } } } },
      scales: {
        x: { stacked: true, ticks: { maxRotation: 0, autoSkip: true }, grid: { display: false } },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: 'Credits' } },
      },
    },
  });
})();
