// Bar charts of the usage page and the admin reports (Chart.js, served from node_modules).
// Each chart reads its figures from a <script type="application/json" id="<canvas id>-data"> block;
// the same figures are in a table beside it for screen readers and for people without script.
(function () {
  'use strict';
  if (typeof window.Chart === 'undefined') return;
  var dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  var text = dark ? '#c2c7d0' : '#373c44';
  var grid = dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.1)';
  var palette = dark ? ['#5b9cf5', '#f0a35e', '#6cc18a', '#d67ad6', '#e6d45c'] : ['#1d5fbf', '#b35c00', '#1f7a3f', '#8e2f8e', '#7a6a00'];
  var dateFmt = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' });
  var monthFmt = new Intl.DateTimeFormat('en-GB', { month: 'short', year: 'numeric', timeZone: 'UTC' });
  document.querySelectorAll('canvas[id$="-chart"]').forEach(function (canvas) {
    var block = document.getElementById(canvas.id + '-data');
    if (!block) return;
    var data = JSON.parse(block.textContent || '{}');
    var fmt = data.granularity === 'month' ? monthFmt : dateFmt;
    new window.Chart(canvas, {
      type: 'bar',
      data: {
        labels: data.labels.map(function (l) { return fmt.format(new Date(l)); }),
        datasets: data.datasets.map(function (d, i) { return { label: d.label, data: d.data, backgroundColor: palette[i % palette.length] }; }),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          x: { stacked: true, ticks: { color: text }, grid: { color: grid } },
          y: { stacked: true, beginAtZero: true, ticks: { color: text }, grid: { color: grid } },
        },
        plugins: { legend: { labels: { color: text } } },
      },
    });
  });
})();
