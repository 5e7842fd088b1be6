/**
 * Python's datetime.strftime in the C locale (English names, whatever the machine's locale), for the
 * chat templates' strftime_now (Granite's "Today's Date: %B %d, %Y", SmolLM3's "%d %B %Y", Llama 3.2's
 * "%d %b %Y"). transformers renders strftime_now with datetime.now(), local time.
 *
 * @example strftime(new Date(2026, 0, 5), '%d %B %Y') // '05 January 2026'
 */
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

export function strftime(d: Date, format: string): string {
  const dayOfYear = Math.round((Date.UTC(d.getFullYear(), d.getMonth(), d.getDate()) - Date.UTC(d.getFullYear(), 0, 1)) / 86400000) + 1;
  const h12 = d.getHours() % 12 || 12;
  const fields: Record<string, string> = {
    a: DAYS[d.getDay()].slice(0, 3), A: DAYS[d.getDay()], b: MONTHS[d.getMonth()].slice(0, 3), B: MONTHS[d.getMonth()],
    d: pad(d.getDate()), e: String(d.getDate()).padStart(2, ' '), H: pad(d.getHours()), I: pad(h12), j: pad(dayOfYear, 3),
    m: pad(d.getMonth() + 1), M: pad(d.getMinutes()), p: d.getHours() < 12 ? 'AM' : 'PM', S: pad(d.getSeconds()),
    y: pad(d.getFullYear() % 100), Y: String(d.getFullYear()), '%': '%',
  };
  // glibc's %-d / %-m (no padding) as well; an unknown directive stays as written, as in Python on Linux.
  return format.replace(/%(-?)([a-zA-Z%])/g, (all, dash: string, c: string) => {
    const v = fields[c];
    if (v === undefined) return all;
    return dash ? v.replace(/^[0 ]+(?=.)/, '') : v;
  });
}
