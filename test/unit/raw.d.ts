// Vite's `?raw` imports: a file's text (used to read wrangler.toml in unit tests).
declare module "*?raw" {
  const text: string;
  export default text;
}
