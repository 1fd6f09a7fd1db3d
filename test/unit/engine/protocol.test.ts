import { Either } from "effect"
import { describe, expect, it } from "vitest"
import { decodeWorkerLine } from "../../../src/domain/WorkerMessage.ts"

describe("worker protocol", () => {
  it("decodes each message type", () => {
    expect(decodeWorkerLine("{\"type\":\"progress\",\"step\":3,\"total\":10}")).toEqual(
      Either.right({ type: "progress", step: 3, total: 10 })
    )
    expect(decodeWorkerLine("{\"type\":\"metric\",\"name\":\"loss\",\"step\":3,\"value\":null}")).toEqual(
      Either.right({ type: "metric", name: "loss", step: 3, value: null })
    )
    expect(Either.isRight(decodeWorkerLine("{\"type\":\"result\",\"value\":{\"a\":[1]}}"))).toBe(true)
    expect(
      Either.isRight(decodeWorkerLine("{\"type\":\"artifact\",\"name\":\"checkpoint/2\",\"path\":\"iter_0000002\"}"))
    ).toBe(true)
  })

  it("rejects malformed lines", () => {
    for (
      const line of [
        "not json",
        "{\"type\":\"progress\",\"step\":\"3\",\"total\":10}",
        "{\"type\":\"nope\"}",
        "{\"type\":\"log\",\"level\":\"loud\",\"message\":\"x\"}"
      ]
    ) {
      expect(Either.isLeft(decodeWorkerLine(line))).toBe(true)
    }
  })
})
