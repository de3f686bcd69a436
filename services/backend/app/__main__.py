"""``python -m app``: serve the API with uvicorn on $HOST:$PORT (0.0.0.0:8000).

Equivalent to ``uvicorn app.main:app --host 0.0.0.0 --port 8000``, for images
whose command cannot expand environment variables.
"""

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "app.main:app",
        host=os.environ.get("HOST", "0.0.0.0"),  # noqa: S104 - a server in a container
        port=int(os.environ.get("PORT", "8000")),
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
