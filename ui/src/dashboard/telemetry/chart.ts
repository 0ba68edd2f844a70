// One bar of a `BarChart`.
export interface Bar {
  label: string;
  value: number;
  /** good (green), bad (red), unknown (grey), neutral (blue), esu (amber: supported
   *  only with Extended Security Updates evidence). */
  tone: "good" | "bad" | "unknown" | "neutral" | "esu";
}
