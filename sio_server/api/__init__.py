"""The HTTP API of signed-in users, one module per resource, with its query and
body models and the OpenAPI document built from them."""
