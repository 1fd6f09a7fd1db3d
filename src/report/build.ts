/**
 * Data -> sections: runs each builder in order, each seeing the sections built before it.
 */
import type { Report, ReportData, Section, SectionBuilder } from "./model.ts"
import { defaultSections } from "./sections/index.ts"

export const buildReport = (data: ReportData, builders: ReadonlyArray<SectionBuilder> = defaultSections): Report => {
  const sections: Array<Section> = []
  const ids = new Set<string>()
  for (const builder of builders) {
    const section = builder.build(data, sections)
    if (section === undefined) continue
    for (const item of [...section.figures, ...section.tables]) {
      if (ids.has(item.id)) throw new Error(`report section ${builder.id}: duplicate figure or table id '${item.id}'`)
      ids.add(item.id)
    }
    sections.push(section)
  }
  return { data, sections }
}
