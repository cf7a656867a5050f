declare module 'parse-prometheus-text-format' {
  /** Parses Prometheus text into families (no types shipped with the package). */
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
