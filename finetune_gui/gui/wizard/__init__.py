"""The Setup wizard: hardware → model → dataset → method → settings → review, all on one RunConfig."""
