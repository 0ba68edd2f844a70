// One bar of a `BarChart`.
export interface Bar {
  label: string;
  value: number;
  /** good (green), bad (red), unknown (grey), neutral (blue). */
  tone: "good" | "bad" | "unknown" | "neutral";
}
