"""Dead letters, in one place: the messages a consumer could not handle, set aside and replayed.

- letters.py: how a consumer (worker, sinks, analytics) sets a message aside on the dead-letter topic;
- topic.py: the topic read back and a letter replayed to where it came from (Kafka);
- cli.py: `paystream dlq list|replay`.
"""
