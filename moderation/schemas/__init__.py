"""marshmallow schemas: one to load each input, others to dump each output.

``base`` holds the fields, validators and base schemas the others build on; ``public``,
``moderation`` and ``admin`` hold those of the routes of the same name in ``api/``.
"""
