"""The training machinery every lstfill model shares, one concern per module.

- `settings`: `TrainConfig`, the `training` section of a job's config (defaults from the schema's
  `$defs/training`, the one place they are written);
- `loop`: `fit`, seeded Adam with a learning-rate schedule, early stopping and a resume state
  after every epoch;
- `rng`: seeding and saving the global random generators (what makes a resumed run identical);
- `workdir`: the resume folder (its fingerprint, and the check that a resume uses the same
  options);
- `checkpoint`: the self-describing model checkpoint format;
- `curves`: the training-curve figure (the only module here that imports matplotlib).
"""
