"""The training machinery every lstfill model shares, one concern per module.

- `settings`: `TrainConfig`, the `training` section of a job's config (defaults from the schema's
  `$defs/training`, the one place they are written);
- `loop`: `fit`, seeded Adam with a learning-rate schedule, early stopping and a resume state
  after every epoch;
- `rng`: seeding and saving the global random generators (what makes a resumed run identical);
- `workdir`: the resume folder (its fingerprint: digests of the input files, config keys and
  formats; and the check that a resume uses the same options);
- `checkpoint`: the self-describing model checkpoint format;
- `storage`: what goes into lstfill's torch files (tensors and plain values only), reading them
  without running code, and telling a truncated, older or foreign file apart;
- `curves`: the training-curve figure (the only module here that imports matplotlib).
"""
