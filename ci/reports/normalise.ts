/** For golden files: replaces what changes from run to run or machine to machine in a report. */
export function normaliseReport(text: string): string {
  return text
    .replace(/timestamp="[^"]*"/g, 'timestamp="TIMESTAMP"')
    .replace(/\btime="[^"]*"/g, 'time="T"')
    .replace(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?/g, 'DATETIME');
}
