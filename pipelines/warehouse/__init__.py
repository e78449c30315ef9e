"""The evaluators' warehouse: facts, measures, suppression, the release and its report."""
