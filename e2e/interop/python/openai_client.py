"""The official OpenAI Python SDK as a real client of our /v1 routes (driven by e2e/scenarios/openai-sdk.test.ts).

usage: openai_client.py BASE_URL API_KEY COMMAND [MODEL]
Prints one JSON object with what the SDK returned (or raised) for COMMAND.
"""

import json
import sys

import openai


def main() -> None:
    base_url, api_key, command = sys.argv[1], sys.argv[2], sys.argv[3]
    model = sys.argv[4] if len(sys.argv) > 4 else "local-dev"
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hello from the Python SDK"},
    ]
    try:
        if command == "models":
            print(json.dumps({"ids": [m.id for m in client.models.list()]}))
        elif command == "complete":
            completion = client.chat.completions.create(model=model, messages=messages, max_tokens=20)
            print(
                json.dumps(
                    {
                        "text": completion.choices[0].message.content,
                        "finish_reason": completion.choices[0].finish_reason,
                        "usage": completion.usage.model_dump(),
                        "session_id": getattr(completion, "session_id", None),
                    }
                )
            )
        elif command == "stream":
            text, finish, usage, session_id = "", None, None, None
            stream = client.chat.completions.create(
                model=model, messages=messages, max_tokens=20, stream=True, stream_options={"include_usage": True}
            )
            for chunk in stream:
                session_id = session_id or getattr(chunk, "session_id", None)
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump()
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    finish = choice.finish_reason or finish
            print(json.dumps({"text": text, "finish_reason": finish, "usage": usage, "session_id": session_id}))
        else:
            raise SystemExit(f"unknown command {command}")
    except openai.APIStatusError as error:
        # the SDK's own error classes, as a caller sees them
        print(
            json.dumps(
                {
                    "error": type(error).__name__,
                    "status": error.status_code,
                    "code": error.code,
                    "param": error.param,
                    "type": error.type,
                }
            )
        )


if __name__ == "__main__":
    main()
