"""Planning layer: the typed run plan (:mod:`.preparation`), the checks made
before any job is launched (:mod:`.checks`) and the review (:mod:`.review`)."""
