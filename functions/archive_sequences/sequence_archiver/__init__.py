"""Archive Reply sequences: the Lambda function's package.

Its layers, from the ground up: core/ (the types every layer speaks), reply/ (Reply's API), aws/ (the AWS
adapters), archiving/ (archiving IDs and clean-up selections), pipeline/ (one invocation: read → work → decide
→ apply → respond), then wiring.py and handler.py. The command line's API is public.py. Importing the package
loads nothing.
"""
