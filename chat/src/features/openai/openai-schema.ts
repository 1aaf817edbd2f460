import { z } from 'zod';

/** A content part: text is taken; images, audio and files are refused with a clear error (the models here read text). */
const contentPart = z.looseObject({ type: z.string().min(1).max(64), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart).max(256)]);

const message = z.looseObject({
  role: z.string().min(1).max(32),
  content: content.nullable().optional(),
  name: z.string().max(256).optional(),
});

/**
 * `POST /v1/chat/completions` as OpenAI's SDKs send it. Fields that change nothing here (user, seed, top_p,
 * penalties, metadata, store) are accepted and ignored; fields this API cannot honour (tools, n > 1, logprobs)
 * are refused with `param` naming them, and unknown fields are refused.
 */
export function completionRequestSchema(maxMessageChars: number) {
  return z
    .object({
      model: z.string().min(1).max(128),
      messages: z.array(message).min(1).max(1_000),
      stream: z.boolean().nullable().optional(),
      stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
      max_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
      max_completion_tokens: z.number().int().min(1).max(1_000_000).nullable().optional(),
      temperature: z.number().min(0).max(2).nullable().optional(),
      stop: z
        .union([z.string().min(1).max(256), z.array(z.string().min(1).max(256)).max(4)])
        .nullable()
        .optional(),
      n: z.number().int().nullable().optional(),
      top_p: z.number().min(0).max(1).nullable().optional(),
      presence_penalty: z.number().min(-2).max(2).nullable().optional(),
      frequency_penalty: z.number().min(-2).max(2).nullable().optional(),
      seed: z.number().int().nullable().optional(),
      user: z.string().max(256).optional(),
      store: z.boolean().nullable().optional(),
      metadata: z.record(z.string(), z.string().max(512)).nullable().optional(),
      logprobs: z.boolean().nullable().optional(),
      tools: z.array(z.unknown()).optional(),
      tool_choice: z.unknown().optional(),
      functions: z.array(z.unknown()).optional(),
      function_call: z.unknown().optional(),
      response_format: z.looseObject({ type: z.string() }).optional(),
    })
    .strict()
    .superRefine((body, ctx) => {
      for (const [index, m] of body.messages.entries()) {
        if (typeof m.content === 'string' && m.content.length > maxMessageChars)
          ctx.addIssue({ code: 'custom', path: ['messages', index, 'content'], message: `at most ${maxMessageChars} characters` });
      }
    });
}

export type CompletionRequest = z.output<ReturnType<typeof completionRequestSchema>>;

const usage = z.object({ prompt_tokens: z.number(), completion_tokens: z.number(), total_tokens: z.number() });

/** documented answers (OpenAI's objects, with our session id and credits added) */
export const completionSchema = z.object({
  id: z.string(),
  object: z.literal('chat.completion'),
  created: z.number(),
  model: z.string(),
  choices: z.array(
    z.object({ index: z.number(), message: z.object({ role: z.literal('assistant'), content: z.string() }), finish_reason: z.string(), logprobs: z.null() }),
  ),
  usage,
  session_id: z.string(),
  credits: z.number().optional(),
});

export const modelListSchema = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.number(), owned_by: z.string() })),
});
