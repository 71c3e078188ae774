SCHEDULE: dict = {}
