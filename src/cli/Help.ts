/**
 * `--help`, rendered from @effect/cli's help document without its filler: every option there opens
 * with its value type in words ("A user-defined piece of text.", "A true or false value.", "A
 * directory.") and closes with "This setting is optional."; the usage line already says both. The
 * defaults our options declare (CommonOptions.withDefault) stay, and of the built-in options only
 * those that do something here are listed, once, at the end.
 */
import { CliConfig, CommandDescriptor, HelpDoc, Usage } from "@effect/cli"
import * as Span from "@effect/cli/HelpDoc/Span"

// The sentences @effect/cli adds to every argument and option (its primitives' descriptions).
const filler = new RegExp(
  "^(?:" + [
    "A true or false value\\.",
    "A user-defined piece of text(?: that is confidential)?\\.",
    "An? (?:existing )?(?:file|directory)(?: or directory)?(?: that must not exist)?\\.",
    "An integer\\.",
    "A floating point number\\.",
    "A date without a time-zone .*",
    "One of the following: .*",
    "This setting is optional\\."
  ].join("|") + ")$"
)

export const spanText = (span: Span.Span): string => {
  switch (span._tag) {
    case "Text":
    case "URI":
      return span.value
    case "Sequence":
      return spanText(span.left) + spanText(span.right)
    default:
      return spanText(span.value)
  }
}

/** The help document without the filler paragraphs. */
export const withoutFiller = (doc: HelpDoc.HelpDoc): HelpDoc.HelpDoc => {
  switch (doc._tag) {
    case "Paragraph":
      return filler.test(spanText(doc.value).trim()) ? HelpDoc.empty : doc
    case "Sequence":
      return HelpDoc.sequence(withoutFiller(doc.left), withoutFiller(doc.right))
    case "DescriptionList":
      return HelpDoc.descriptionList(
        doc.definitions.map(([span, block]): [Span.Span, HelpDoc.HelpDoc] => [span, withoutFiller(block)]) as [
          [Span.Span, HelpDoc.HelpDoc],
          ...Array<[Span.Span, HelpDoc.HelpDoc]>
        ]
      )
    case "Enumeration":
      return HelpDoc.enumeration(
        doc.elements.map(withoutFiller) as [HelpDoc.HelpDoc, ...Array<HelpDoc.HelpDoc>]
      )
    default:
      return doc
  }
}

// Hidden from each command's options: --wizard (interactive prompts this CLI does not describe) and
// --log-level (nothing here logs through Effect's logger, so it would change nothing).
const config = CliConfig.make({ showBuiltIns: false })

const globalOptions = HelpDoc.sequence(
  HelpDoc.h1("GLOBAL OPTIONS"),
  HelpDoc.descriptionList([
    [Span.text("-h, --help"), HelpDoc.p("show this help (after a command: the command's)")],
    [Span.text("--version"), HelpDoc.p("print the version")],
    [Span.text("--completions sh | bash | fish | zsh"), HelpDoc.p("print a completion script for the shell")]
  ])
)

/** The help of a command (the root or one subcommand, by its descriptor), as printed text. */
export const helpText = <A>(name: string, version: string, command: CommandDescriptor.Command<A>): string => {
  const usage = Usage.enumerate(CommandDescriptor.getUsage(command), config).map((span) =>
    HelpDoc.p(Span.concat(Span.text("$ "), span))
  )
  return HelpDoc.toAnsiText(
    HelpDoc.blocks([
      HelpDoc.h1(Span.code(name)),
      HelpDoc.p(`${name} ${version}`),
      HelpDoc.h1("USAGE"),
      ...usage,
      withoutFiller(CommandDescriptor.getHelp(command, config)),
      globalOptions
    ])
  )
}
