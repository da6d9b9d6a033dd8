"""The report page's stylesheet and its few lines of script (table sorting and filtering), inlined into the page:
no CDN, no files beside it to lose. Kept as Python strings so they ship inside the package with no package-data
entry."""

STYLE = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #dde1e8; --card: #ffffff; --page: #f5f6f8; --accent: #1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--page); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 60px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 4px; }
h3 { font-size: 16px; margin: 18px 0 4px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eef0f4; padding: 0 3px;
       border-radius: 3px; }
.lead { color: var(--muted); margin: 0 0 14px; max-width: 980px; }
nav { display: flex; flex-wrap: wrap; gap: 6px; margin: 10px 0 18px; }
nav a { color: var(--accent); text-decoration: none; background: var(--card); border: 1px solid var(--line);
        border-radius: 14px; padding: 2px 10px; font-size: 13px; }
.facts { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 18px; }
.fact { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; }
.fact b { display: block; font-size: 20px; }
.fact span { color: var(--muted); font-size: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 16px 18px;
        margin: 0 0 18px; }
.card > p.caption { color: var(--muted); margin: 0 0 8px; max-width: 980px; }
.card .empty { color: var(--muted); font-style: italic; margin: 4px 0 0; max-width: 980px; }
.card .png { font-size: 12px; float: right; color: var(--muted); }
img.figure { display: block; max-width: 100%; height: auto; margin: 6px auto 0; }
.rule { border-left: 4px solid #d9822b; background: #fff6ec; padding: 8px 12px; margin: 8px 0 12px;
        max-width: 980px; }
.tools { display: flex; gap: 12px; align-items: center; margin: 8px 0 4px; }
.tools input { font: inherit; padding: 5px 9px; width: 340px; border: 1px solid #c3c8d2; border-radius: 6px; }
.tools span { color: var(--muted); font-size: 12px; }
section.protocol { margin-top: 10px; }
section.protocol p { margin: 2px 0 6px; max-width: 1100px; font-size: 13px; }
section.protocol p.warn { color: #8a4b08; }
section.protocol p.explain { color: var(--muted); }
.badge { font-size: 11px; font-weight: 600; padding: 1px 8px; border-radius: 10px; background: #f3d9bd;
         color: #7a3e00; vertical-align: 2px; }
.badge.ranked { background: #cfe8d4; color: #145a25; }
.count { font-size: 12px; font-weight: normal; color: var(--muted); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 9px; text-align: left; white-space: nowrap; }
th { background: #eef1f5; position: sticky; top: 0; cursor: pointer; user-select: none; }
th[data-numeric], td[data-sort] { text-align: right; }
th.asc::after { content: " \\25B2"; font-size: 9px; }
th.desc::after { content: " \\25BC"; font-size: 9px; }
td:empty::after { content: "\\2013"; color: #c4c8d0; }
td.note:empty::after { content: ""; }
td.note { color: var(--muted); cursor: help; }
tr.ref td { color: #4d5566; font-style: italic; background: #fafafa; }
table:not(.sorted) tr.block-start td { border-top: 2px solid #b9c0cc; }
tbody tr:hover td { background: #f0f6fc; }
ol.notes { color: var(--muted); font-size: 12px; margin: 6px 0 0; padding-left: 28px; max-width: 1100px; }
.ledger table { margin-top: 6px; }
footer { color: var(--muted); font-size: 12px; margin-top: 24px; }
"""

# Sort on a header click (numbers by data-sort, text otherwise; empty cells last either way); the filter keeps rows
# holding every word typed, across all tables.
SCRIPT = """
document.querySelectorAll('table.board').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('asc', 'desc'); });
      th.classList.add(asc ? 'asc' : 'desc');
      table.classList.add('sorted');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        if (cell.hasAttribute('data-sort')) { return parseFloat(cell.getAttribute('data-sort')); }
        return cell.textContent.trim() === '' ? null : cell.textContent.trim().toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
var filter = document.getElementById('filter');
if (filter) {
  filter.addEventListener('input', function () {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var shown = 0, total = 0;
    document.querySelectorAll('table.board tbody tr').forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.style.display = keep ? '' : 'none';
      shown += keep; total += 1;
    });
    document.getElementById('shown').textContent = words.length ? shown + ' of ' + total + ' rows' : '';
  });
}
document.querySelectorAll('img.figure').forEach(function (img) {
  if (img.complete && img.naturalWidth) { img.dataset.loaded = '1'; }
});
"""
