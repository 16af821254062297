"""Word lists for instanced directory names (``<adjective>-<animal>-<UTC timestamp>``)."""

ADJECTIVES = (
    "amber", "brave", "calm", "daring", "eager", "fancy", "gentle", "happy", "icy", "jolly",
    "keen", "lively", "merry", "nimble", "odd", "proud", "quiet", "rapid", "shy", "tidy",
    "urban", "vivid", "witty", "young", "zesty", "bold", "crisp", "dusty", "early", "fuzzy",
)  # fmt: skip

ANIMALS = (
    "aardvark", "badger", "camel", "dingo", "egret", "ferret", "gecko", "heron", "ibis",
    "jackal", "koala", "lemur", "marmot", "newt", "otter", "panda", "quail", "raven", "stoat",
    "tapir", "urchin", "vole", "walrus", "yak", "zebra", "bison", "coyote", "dormouse", "eland",
    "finch",
)  # fmt: skip
