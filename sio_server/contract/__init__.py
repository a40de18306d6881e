"""The HTTP API's contract: what it accepts (query strings, path patterns and bodies as
pydantic models, `queries.py` and `models.py`), what it answers (`models.py`), and the
OpenAPI 3.1 document built from them (`openapi.py`, its one route table)."""
