"""The archiving strategies: archiving IDs (single or bulk, pause first), clean-up selections and their policies."""
