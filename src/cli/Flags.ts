/**
 * Command-line flags derived from the domain's schemas: a flag takes its description (and, for a literal, its
 * choices) from the schema field it sets, so the CLI, the MCP tools and the API describe each spawn option once, in
 * src/domain. Values are decoded by the domain schema when the command runs, so a flag's bounds are the field's.
 */
import { Flag } from "effect/cli"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"

/** The description a domain field carries (its `description` annotation). */
export const descriptionOf = (field: Schema.Top): string => SchemaAST.resolveDescription(field.ast) ?? ""

/** A text flag setting `field`. */
export const textFlag = (name: string, field: Schema.Top) =>
  Flag.String(name).pipe(Flag.withDescription(descriptionOf(field)))

/** An integer flag setting `field` (its range is checked by the field's schema). */
export const intFlag = (name: string, field: Schema.Top) =>
  Flag.Int(name).pipe(Flag.withDescription(descriptionOf(field)))

/** A flag choosing one of a domain literal's values, described by `field`. */
export const literalFlag = <const L extends ReadonlyArray<string>>(
  name: string,
  literals: { readonly literals: L },
  field: Schema.Top
) => Flag.Literals(name, literals.literals).pipe(Flag.withDescription(descriptionOf(field)))

/** A number flag setting `field` (its range is checked by the field's schema). */
export const numberFlag = (name: string, field: Schema.Top) =>
  Flag.Finite(name).pipe(Flag.withDescription(descriptionOf(field)))
