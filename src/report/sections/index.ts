/**
 * The report's sections, in order. Adding a section is adding a builder here (or passing another list to
 * `buildReport`); a builder that finds nothing to show returns undefined and the section is left out. The
 * lineage builder goes last: it describes the figures and tables of the sections before it.
 */
import type { SectionBuilder } from "../model.ts"
import { computeSection } from "./computeSection.ts"
import { cooldownSection } from "./cooldownSection.ts"
import { evaluationSection } from "./evaluation.ts"
import { lineageSection } from "./lineageSection.ts"
import { routingSection } from "./routingSection.ts"
import { scalingSection } from "./scalingSection.ts"
import { trainingSection } from "./training.ts"

export const contentSections: ReadonlyArray<SectionBuilder> = [
  trainingSection,
  evaluationSection,
  computeSection,
  scalingSection,
  cooldownSection,
  routingSection
]

export const defaultSections: ReadonlyArray<SectionBuilder> = [...contentSections, lineageSection]

/** The default list with extra builders placed before the lineage section (so it covers them too). */
export const withSections = (extra: ReadonlyArray<SectionBuilder>): ReadonlyArray<SectionBuilder> => [
  ...contentSections,
  ...extra,
  lineageSection
]
