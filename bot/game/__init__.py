"""¿Real o ficticio?: a round shows a real tweet and a generated one; the chat guesses which is real.

``pool`` reads a model's real tweets (ones it never trained on), ``texts`` holds what players
read, ``rounds`` runs the rounds on the core (commands, buttons, time-outs). The rounds and
votes go to ``db/game.py``; the review desk and ``politico-train evaluate`` read the figures.
"""
