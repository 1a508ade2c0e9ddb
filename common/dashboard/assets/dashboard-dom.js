// What every dashboard page builds with (an ES module the pages' scripts
// import): DOM nodes whose text is set through Node.append and textContent only,
// never innerHTML, so nothing a component reports (a route path, a directory
// name, an error message) can become markup or script; number formats; the
// poll loop with its "showing what it said at" banner.

/** An element with a class and children; strings become text nodes (Node.append never parses them). */
export function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}
export const badge = (kind, text) => el('span', `badge ${kind}`, text);
export const row = (className, cells) => el('tr', className, ...cells.map((c) => (c instanceof HTMLTableCellElement ? c : el('td', null, c))));
export const num = (text) => el('td', 'num', text);
export const mono = (text) => el('td', 'mono', text);
export const rps = (value) => (value === null ? '—' : value.toFixed(value < 10 ? 2 : 1));
export const share = (value) => (value === null ? '—' : `${(value * 100).toFixed(value > 0 && value < 0.01 ? 2 : 1)}%`);
export const clock = (iso) => new Date(iso).toLocaleTimeString();

export function duration(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

/** Bytes in binary units (KiB, MiB…), as the flags take them. */
export function bytes(value) {
  if (value === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(i === 0 || value >= 100 ? 0 : 1)} ${units[i]}`;
}

/** A latency in seconds, to a precision a histogram bucket can give. */
export function latency(seconds) {
  if (seconds === null) return '—';
  return seconds < 1 ? `${(seconds * 1000).toFixed(seconds < 0.01 ? 1 : 0)} ms` : `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
}

/** Replaces a table body's rows, or shows one row saying why it is empty. */
export function fill(tbody, rows, columns, emptyText) {
  tbody.replaceChildren(...(rows.length > 0 ? rows : [row('empty', [Object.assign(el('td', null, emptyText), { colSpan: columns })])]));
}

/** A card: a title and a list of [name, value] (a value may be a node). */
export function card(title, entries) {
  const list = el('dl');
  for (const [name, value] of entries) list.append(el('dt', null, name), el('dd', null, value));
  return el('div', 'card', el('h3', null, title), list);
}

/** Fetches `url` every `every` ms and hands its JSON to `render`, or the error to `failed`. */
export function poll(url, every, render, failed) {
  const once = async () => {
    try {
      const res = await fetch(url, { cache: 'no-store' });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      render(await res.json());
    } catch (err) {
      failed(err);
    }
    setTimeout(once, every);
  };
  void once();
}

/**
 * Polls the page's main document: while it fails, the #problem banner says so
 * and the page keeps what the component last said (and when).
 */
export function pollMain(url, every, render, who) {
  let lastGood = null;
  const problem = document.getElementById('problem');
  poll(url, every, (data) => {
    render(data);
    lastGood = new Date();
    problem.hidden = true;
  }, (err) => {
    problem.hidden = false;
    problem.textContent = `${err.message}${lastGood ? ` — showing what the ${who} said at ${lastGood.toLocaleTimeString()}` : ''}`;
  });
}
